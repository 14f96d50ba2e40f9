require "base64"

class OrdersController < ApplicationController
  before_action :authenticate_user!

  def show
    render json: Order.find(params[:id])
  end

  def show_mine
    render json: current_user.orders.find(params[:id])
  end

  def import
    order = Marshal.load(Base64.decode64(params[:blob].to_s))
    render json: order
  end
end
